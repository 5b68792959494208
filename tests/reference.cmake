# Checks of the C model against the PyTorch reference fixtures (docs/verification.md).
# Included from the top CMakeLists.txt. Needs Debian's /usr/bin/python3 with torch,
# h5py and numpy (the self-test runs the reference in float32 as a stand-in).
set(ENTPROG_REF_PYTHON /usr/bin/python3 CACHE FILEPATH "Python with torch, h5py and numpy for the reference checks")
set(ENTPROG_REF_CHECK ${PROJECT_SOURCE_DIR}/tests/check_reference.py)
set(ENTPROG_REF_FIXTURES ${PROJECT_SOURCE_DIR}/tests/fixtures)

foreach(ref_case video video_drop image video_fe_temporal)
  set(ref_work ${CMAKE_BINARY_DIR}/test-work/reference_${ref_case})
  file(MAKE_DIRECTORY ${ref_work})
  add_test(NAME reference_${ref_case}
           COMMAND ${ENTPROG_REF_PYTHON} ${ENTPROG_REF_CHECK}
                   --entprog $<TARGET_FILE:entprog> --case ${ref_case}
                   --fixtures ${ENTPROG_REF_FIXTURES} --workdir ${ref_work}
           WORKING_DIRECTORY ${ref_work})
  set_tests_properties(reference_${ref_case} PROPERTIES
                       LABELS reference TIMEOUT 900
                       ENVIRONMENT "HDF5_USE_FILE_LOCKING=FALSE")
endforeach()

set(ref_work ${CMAKE_BINARY_DIR}/test-work/reference_checker_selftest)
file(MAKE_DIRECTORY ${ref_work})
add_test(NAME reference_checker_selftest
         COMMAND ${ENTPROG_REF_PYTHON} ${ENTPROG_REF_CHECK} --self-test
                 --fixtures ${ENTPROG_REF_FIXTURES} --workdir ${ref_work}
         WORKING_DIRECTORY ${ref_work})
set_tests_properties(reference_checker_selftest PROPERTIES
                     LABELS reference TIMEOUT 600
                     ENVIRONMENT "HDF5_USE_FILE_LOCKING=FALSE")
