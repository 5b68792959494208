# The CUDA backend against the CPU one (label gpu). Without a CUDA build or a
# GPU the tests print why and count as skipped (exit code 77).
add_executable(test_gpu ${PROJECT_SOURCE_DIR}/tests/test_gpu.c)
target_link_libraries(test_gpu PRIVATE entprog_core)
add_test(NAME gpu_ops COMMAND test_gpu ops)
add_test(NAME gpu_attn COMMAND test_gpu attn)
add_test(NAME gpu_model COMMAND test_gpu model)
add_test(NAME gpu_train COMMAND test_gpu train)
set_tests_properties(gpu_ops gpu_attn gpu_model gpu_train PROPERTIES LABELS gpu SKIP_RETURN_CODE 77 TIMEOUT 300)
add_test(NAME gpu_train_e2e COMMAND ${PROJECT_SOURCE_DIR}/tests/gpu_train_e2e.sh $<TARGET_FILE:entprog>
         ${PROJECT_SOURCE_DIR}/inputs/tiny.ini ${CMAKE_BINARY_DIR}/test-work/gpu-train)
set_tests_properties(gpu_train_e2e PROPERTIES LABELS gpu SKIP_RETURN_CODE 77 TIMEOUT 300
                     ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;HDF5_USE_FILE_LOCKING=FALSE")
