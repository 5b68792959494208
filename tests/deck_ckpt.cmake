# Deck parsing and checkpoint tests (labels: deck, ckpt).
set(ENTPROG_DC_WORK ${CMAKE_BINARY_DIR}/test-work)
file(MAKE_DIRECTORY ${ENTPROG_DC_WORK}/deck ${ENTPROG_DC_WORK}/checkpoint ${ENTPROG_DC_WORK}/checkpoint-mpi2)
set(ENTPROG_DC_ENV HDF5_USE_FILE_LOCKING=FALSE OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)

add_executable(test_deck ${PROJECT_SOURCE_DIR}/tests/test_deck.c)
target_link_libraries(test_deck PRIVATE entprog_core)
add_test(NAME deck_parse
         COMMAND test_deck ${PROJECT_SOURCE_DIR}/inputs ${ENTPROG_DC_WORK}/deck
         WORKING_DIRECTORY ${ENTPROG_DC_WORK}/deck)
set_tests_properties(deck_parse PROPERTIES LABELS deck ENVIRONMENT "${ENTPROG_DC_ENV}")

add_executable(test_checkpoint ${PROJECT_SOURCE_DIR}/tests/test_checkpoint.c)
target_link_libraries(test_checkpoint PRIVATE entprog_core)
add_test(NAME ckpt_serial
         COMMAND test_checkpoint ${ENTPROG_DC_WORK}/checkpoint
         WORKING_DIRECTORY ${ENTPROG_DC_WORK}/checkpoint)
add_test(NAME ckpt_mpi2
         COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 --oversubscribe --allow-run-as-root
                 $<TARGET_FILE:test_checkpoint> ${ENTPROG_DC_WORK}/checkpoint-mpi2 --collective
         WORKING_DIRECTORY ${ENTPROG_DC_WORK}/checkpoint-mpi2)
set_tests_properties(ckpt_serial ckpt_mpi2 PROPERTIES LABELS ckpt ENVIRONMENT "${ENTPROG_DC_ENV}" TIMEOUT 120)
