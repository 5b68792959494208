# The paper's three training phases through jobs/phases.sh on the tiny deck
# (tests/check_phases.py): handover checkpoints, each phase's setting, the
# temporal-only baseline, Ent-Prog's schedule per phase, skip and resume.
add_test(NAME phases_pipeline
         COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_phases.py $<TARGET_FILE:entprog>
                 ${PROJECT_SOURCE_DIR} ${CMAKE_BINARY_DIR}/test-work/phases)
set_tests_properties(phases_pipeline PROPERTIES LABELS "entprog" TIMEOUT 300
  ENVIRONMENT "HDF5_USE_FILE_LOCKING=FALSE;OPENBLAS_NUM_THREADS=1;OMP_NUM_THREADS=1")
