# The command line (src/cli/): command table, argument errors, predict --backend (label: cli).
add_test(NAME cli_arguments
         COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_cli.py $<TARGET_FILE:entprog>
                 ${PROJECT_SOURCE_DIR}/tests/fixtures ${CMAKE_BINARY_DIR}/test-work/cli)
set_tests_properties(cli_arguments PROPERTIES LABELS "cli" TIMEOUT 300
  ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;HDF5_USE_FILE_LOCKING=FALSE;OPENBLAS_NUM_THREADS=1")

add_test(NAME cli_blas_core
         COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_blas_core.py $<TARGET_FILE:entprog>
                 ${PROJECT_SOURCE_DIR}/inputs/tiny.ini ${CMAKE_BINARY_DIR}/test-work/blas_core)
set_tests_properties(cli_blas_core PROPERTIES LABELS "cli" TIMEOUT 300
  ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;HDF5_USE_FILE_LOCKING=FALSE;OPENBLAS_NUM_THREADS=1")
