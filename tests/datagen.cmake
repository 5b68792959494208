# Synthetic dataset generator and loader tests (label: data).
set(ENTPROG_DATA_WORK ${CMAKE_BINARY_DIR}/test-work)
file(MAKE_DIRECTORY ${ENTPROG_DATA_WORK}/data-roundtrip ${ENTPROG_DATA_WORK}/data-datagen ${ENTPROG_DATA_WORK}/data-badinput)
set(ENTPROG_DATA_ENV HDF5_USE_FILE_LOCKING=FALSE OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)

add_executable(test_dataset ${PROJECT_SOURCE_DIR}/tests/test_dataset.c)
target_link_libraries(test_dataset PRIVATE entprog_core)

# Generate a small dataset, read clips/frames back (strides 1-3) and compare with whole reads.
add_test(NAME data_roundtrip
         COMMAND test_dataset roundtrip ${ENTPROG_DATA_WORK}/data-roundtrip
         WORKING_DIRECTORY ${ENTPROG_DATA_WORK}/data-roundtrip)
# entprog datagen: determinism, seeds, layout, motion, preview.png, 2 MPI ranks.
add_test(NAME data_datagen
         COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_dataset.py datagen
                 --entprog $<TARGET_FILE:entprog> --mpiexec ${MPIEXEC_EXECUTABLE}
                 --work ${ENTPROG_DATA_WORK}/data-datagen
         WORKING_DIRECTORY ${ENTPROG_DATA_WORK}/data-datagen)
# Broken dataset files (wrong H, missing /pose, not HDF5, missing file, ...) are refused by name.
add_test(NAME data_bad_input
         COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_dataset.py badinput
                 --probe $<TARGET_FILE:test_dataset> --work ${ENTPROG_DATA_WORK}/data-badinput
         WORKING_DIRECTORY ${ENTPROG_DATA_WORK}/data-badinput)
set_tests_properties(data_roundtrip data_datagen data_bad_input
                     PROPERTIES LABELS data ENVIRONMENT "${ENTPROG_DATA_ENV}" TIMEOUT 300)
