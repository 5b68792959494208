# Faults caused on purpose (tests/check_reliability.py, docs/reliability.md): divergence, NaN in weights and
# data, a full disk (the injected ENOSPC of tests/fault/enospc.c, preloaded), SIGTERM and a double SIGINT.
add_library(fault_enospc SHARED ${PROJECT_SOURCE_DIR}/tests/fault/enospc.c)
# preloaded into mpirun too, so never instrumented: the sanitizer build's flags are taken off again
target_compile_options(fault_enospc PRIVATE -fno-sanitize=all)
target_link_options(fault_enospc PRIVATE -fno-sanitize=all)
target_link_libraries(fault_enospc PRIVATE dl)
add_test(NAME reliability_faults
         COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_reliability.py $<TARGET_FILE:entprog>
                 ${PROJECT_SOURCE_DIR}/inputs/tiny.ini ${CMAKE_BINARY_DIR}/test-work/reliability $<TARGET_FILE:fault_enospc>)
set_tests_properties(reliability_faults PROPERTIES LABELS "reliability" TIMEOUT 900
  ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;HDF5_USE_FILE_LOCKING=FALSE;OPENBLAS_NUM_THREADS=1;OMP_NUM_THREADS=1")
# kill -9 at random moments of a 2-rank Ent-Prog run, resumed each time: bit-identical end (label slow: not
# under the sanitizers, where it would take many minutes)
add_test(NAME reliability_kill
         COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_kill.py $<TARGET_FILE:entprog>
                 ${PROJECT_SOURCE_DIR}/inputs/tiny.ini ${CMAKE_BINARY_DIR}/test-work/kill)
set_tests_properties(reliability_kill PROPERTIES LABELS "reliability;slow" TIMEOUT 900
  ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;HDF5_USE_FILE_LOCKING=FALSE;OPENBLAS_NUM_THREADS=1;OMP_NUM_THREADS=1")
