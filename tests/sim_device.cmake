# The model's host <-> device staging exercised on the CPU (ENTPROG_SIM_DEVICE=1
# keeps separate backend copies as CUDA does): results bit-identical to the plain CPU.
# Label slow: the normal build runs it, the ASan build (-LE slow) does not (3 minutes there).
add_test(NAME sim_device_end_to_end
         COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_sim_device.py $<TARGET_FILE:entprog>
                 ${PROJECT_SOURCE_DIR}/inputs/tiny.ini ${CMAKE_BINARY_DIR}/test-work/sim-device ${MPIEXEC_EXECUTABLE})
set_tests_properties(sim_device_end_to_end PROPERTIES LABELS "train;slow" TIMEOUT 600
  ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;HDF5_USE_FILE_LOCKING=FALSE;OPENBLAS_NUM_THREADS=1;OMP_NUM_THREADS=2")
