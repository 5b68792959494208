# CEI scores, the checkpoint schedule datasets and `entprog cei` (label: cei).
set(ENTPROG_CEI_WORK ${CMAKE_BINARY_DIR}/test-work)
file(MAKE_DIRECTORY ${ENTPROG_CEI_WORK}/cei-model ${ENTPROG_CEI_WORK}/cei-schedule ${ENTPROG_CEI_WORK}/cei-e2e)
set(ENTPROG_CEI_ENV OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE)

add_executable(test_cei ${PROJECT_SOURCE_DIR}/tests/test_cei.c)
target_link_libraries(test_cei PRIVATE entprog_core)

# Hand-built model: dominant block first, identity block exactly 0, determinism, partial batch, slow reference.
add_test(NAME cei_model
         COMMAND test_cei model ${ENTPROG_CEI_WORK}/cei-model
         WORKING_DIRECTORY ${ENTPROG_CEI_WORK}/cei-model)
# /schedule/cei and /schedule/order: checkpoint and bare-file round trips, replacement, refusals.
add_test(NAME cei_schedule
         COMMAND test_cei schedule ${ENTPROG_CEI_WORK}/cei-schedule
         WORKING_DIRECTORY ${ENTPROG_CEI_WORK}/cei-schedule)
# entprog datagen + 3 train steps + entprog cei on the tiny deck; bad invocations.
add_test(NAME cei_end_to_end
         COMMAND test_cei e2e $<TARGET_FILE:entprog> ${PROJECT_SOURCE_DIR}/inputs/tiny.ini ${ENTPROG_CEI_WORK}/cei-e2e
         WORKING_DIRECTORY ${ENTPROG_CEI_WORK}/cei-e2e)
set_tests_properties(cei_model cei_schedule cei_end_to_end
                     PROPERTIES LABELS cei ENVIRONMENT "${ENTPROG_CEI_ENV}" TIMEOUT 300)
