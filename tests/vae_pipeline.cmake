# The latent-space pipeline (docs/vae.md; label: vae): datagen -> encode --dataset-in (1 and 2 MPI ranks) through
# the committed tiny random VAE -> train -> sample with data.vae -> decoded frames. Plain python3: no diffusers.
add_test(NAME vae_pipeline
         COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_vae_pipeline.py $<TARGET_FILE:entprog>
                 ${CMAKE_BINARY_DIR}/test-work/vae-pipeline ${MPIEXEC_EXECUTABLE})
set_tests_properties(vae_pipeline PROPERTIES LABELS vae TIMEOUT 120
                     ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;HDF5_USE_FILE_LOCKING=FALSE;OPENBLAS_NUM_THREADS=1")
