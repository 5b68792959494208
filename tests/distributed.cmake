# Data-parallel training, re-sharded resume, the partitioned search and a killed rank, under mpirun.
add_test(NAME distributed_mpi
         COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_distributed.py $<TARGET_FILE:entprog>
                 ${MPIEXEC_EXECUTABLE} ${PROJECT_SOURCE_DIR}/inputs/tiny.ini ${CMAKE_BINARY_DIR}/test-work/distributed)
set_tests_properties(distributed_mpi PROPERTIES LABELS "mpi" TIMEOUT 600)
