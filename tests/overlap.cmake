# The gradient exchange overlapped with backward gives the same bits as after it (2 and 3 ranks, under mpirun).
add_test(NAME overlap_mpi
         COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_overlap.py $<TARGET_FILE:entprog>
                 ${MPIEXEC_EXECUTABLE} ${PROJECT_SOURCE_DIR}/inputs/tiny.ini ${CMAKE_BINARY_DIR}/test-work/overlap)
set_tests_properties(overlap_mpi PROPERTIES LABELS "mpi" TIMEOUT 600)
# mpi/dp.c on cuts the model rarely makes (empty and uneven slices): overlapped = after, bit for bit; equal shards.
add_executable(test_dp ${PROJECT_SOURCE_DIR}/tests/test_dp.c)
target_link_libraries(test_dp PRIVATE entprog_core)
foreach(n 1 3 4)
  add_test(NAME dp_exchange_${n} COMMAND ${MPIEXEC_EXECUTABLE} -n ${n} --oversubscribe $<TARGET_FILE:test_dp>)
  set_tests_properties(dp_exchange_${n} PROPERTIES LABELS "mpi" TIMEOUT 120
                       ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
endforeach()
