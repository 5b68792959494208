# End-to-end training checks on the tiny deck (learning, bit-exact resume, bad inputs).
add_test(NAME train_end_to_end
         COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_train.py $<TARGET_FILE:entprog>
                 ${PROJECT_SOURCE_DIR}/inputs/tiny.ini ${CMAKE_BINARY_DIR}/test-work/train)
set_tests_properties(train_end_to_end PROPERTIES LABELS "train"
  ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;HDF5_USE_FILE_LOCKING=FALSE;OPENBLAS_NUM_THREADS=1")
# Validation: the same samples whatever train.seed is, the EMA weights when the run keeps them (issue 15).
add_test(NAME train_val_split
         COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_val_split.py $<TARGET_FILE:entprog>
                 ${PROJECT_SOURCE_DIR}/inputs/tiny.ini ${CMAKE_BINARY_DIR}/test-work/val_split)
set_tests_properties(train_val_split PROPERTIES LABELS "train"
  ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;HDF5_USE_FILE_LOCKING=FALSE;OPENBLAS_NUM_THREADS=1")
