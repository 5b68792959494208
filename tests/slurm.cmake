# jobs/cpu_small.sbatch under a real single-node Slurm started by the test
# (munge, slurmctld, slurmd; needs root and the Debian packages slurm-wlm,
# munge): datagen + train on 2 tasks with srun --mpi=pmix, requeue on USR1 and
# resume, checkpoint and log checks; daemons always stopped (label: slurm).
add_test(NAME slurm_cpu_small
         COMMAND ${PROJECT_SOURCE_DIR}/tests/slurm/run_slurm_test.sh $<TARGET_FILE:entprog>
                 ${PROJECT_SOURCE_DIR} ${CMAKE_BINARY_DIR}/test-work/slurm 2)
# RESOURCE_LOCK: the build and sanitizer trees never run two private clusters at once.
set_tests_properties(slurm_cpu_small PROPERTIES LABELS slurm TIMEOUT 900 RESOURCE_LOCK slurm
  ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;HDF5_USE_FILE_LOCKING=FALSE")
