# Freezing (gradient/moment memory, truncated backward) and the schedule logic.
add_executable(test_freeze ${PROJECT_SOURCE_DIR}/tests/test_freeze.c)
target_link_libraries(test_freeze PRIVATE entprog_core)
add_test(NAME entprog_freeze COMMAND test_freeze)
set_tests_properties(entprog_freeze PROPERTIES LABELS "entprog"
  ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OPENBLAS_NUM_THREADS=1")

# Activation recomputation: bit-identical to keeping every activation, less memory.
add_executable(test_recompute ${PROJECT_SOURCE_DIR}/tests/test_recompute.c)
target_link_libraries(test_recompute PRIVATE entprog_core)
add_test(NAME entprog_recompute COMMAND test_recompute)
set_tests_properties(entprog_recompute PROPERTIES LABELS "entprog" ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
