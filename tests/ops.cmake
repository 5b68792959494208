# Finite-difference checks of the ops (label ops) and of the whole model (label fd).
add_executable(test_ops ${PROJECT_SOURCE_DIR}/tests/test_ops.c)
target_link_libraries(test_ops PRIVATE entprog_core)
add_test(NAME ops_fd COMMAND test_ops)
set_tests_properties(ops_fd PROPERTIES LABELS ops ENVIRONMENT OPENBLAS_NUM_THREADS=1 TIMEOUT 60)

add_executable(test_model_fd ${PROJECT_SOURCE_DIR}/tests/test_model_fd.c)
target_link_libraries(test_model_fd PRIVATE entprog_core)
add_test(NAME model_fd COMMAND test_model_fd)
# one thread: the FD passes are tiny, and OpenMP threads spinning on a busy 2-core
# machine (the sanitizer build beside the Slurm test) made them 20x slower
set_tests_properties(model_fd PROPERTIES LABELS fd ENVIRONMENT "OPENBLAS_NUM_THREADS=1;OMP_NUM_THREADS=1" TIMEOUT 300)
