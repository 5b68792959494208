# DDIM sampling, the GIF writer, frame metrics and `entprog sample` / `entprog eval` (label: sample).
set(ENTPROG_SAMPLE_WORK ${CMAKE_BINARY_DIR}/test-work)
file(MAKE_DIRECTORY ${ENTPROG_SAMPLE_WORK}/sample-ddim ${ENTPROG_SAMPLE_WORK}/sample-metrics
     ${ENTPROG_SAMPLE_WORK}/sample-e2e)
set(ENTPROG_SAMPLE_ENV OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE)

add_executable(test_sample ${PROJECT_SOURCE_DIR}/tests/test_sample.c)
target_link_libraries(test_sample PRIVATE entprog_core)
add_executable(test_eval ${PROJECT_SOURCE_DIR}/tests/test_eval.c)
target_link_libraries(test_eval PRIVATE entprog_core)

# Analytic denoisers: x0 recovery (eta 0 and 1), guidance 1/0/w, respacing, seeded eta noise.
add_test(NAME sample_ddim
         COMMAND test_sample ddim
         WORKING_DIRECTORY ${ENTPROG_SAMPLE_WORK}/sample-ddim)
# SSIM / PSNR / L1 / temporal measures against hand-computed and directly computed values.
add_test(NAME sample_metrics
         COMMAND test_eval
         WORKING_DIRECTORY ${ENTPROG_SAMPLE_WORK}/sample-metrics)
# datagen + 3 train steps + entprog sample + entprog eval on the tiny deck; GIFs and grid.png decoded
# independently; metrics recomputed in numpy; 2 MPI ranks; bad invocations.
add_test(NAME sample_end_to_end
         COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_media.py
                 --entprog $<TARGET_FILE:entprog> --test-sample $<TARGET_FILE:test_sample>
                 --deck ${PROJECT_SOURCE_DIR}/inputs/tiny.ini --mpiexec ${MPIEXEC_EXECUTABLE}
                 --work ${ENTPROG_SAMPLE_WORK}/sample-e2e
         WORKING_DIRECTORY ${ENTPROG_SAMPLE_WORK}/sample-e2e)
set_tests_properties(sample_ddim sample_metrics sample_end_to_end
                     PROPERTIES LABELS sample ENVIRONMENT "${ENTPROG_SAMPLE_ENV}" TIMEOUT 600)
