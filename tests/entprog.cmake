# Ent-Prog fine-tuning end to end on the tiny deck (freezing, schedule, methods, resume).
add_test(NAME entprog_end_to_end
         COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_entprog.py $<TARGET_FILE:entprog>
                 ${PROJECT_SOURCE_DIR}/inputs/tiny.ini ${CMAKE_BINARY_DIR}/test-work/entprog)
set_tests_properties(entprog_end_to_end PROPERTIES LABELS "entprog"
  ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;HDF5_USE_FILE_LOCKING=FALSE;OPENBLAS_NUM_THREADS=1;OMP_NUM_THREADS=2")
