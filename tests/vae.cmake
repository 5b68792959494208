# The SD VAE (docs/vae.md; label: vae): entprog encode / decode against diffusers' AutoencoderKL with random
# weights, the refusals of bad files. diffusers comes from PyPI into a venv (~/.cache/entprog) that
# scripts/install-deps.sh makes; vae_venv (a fixture: ctest runs it before vae_parity) only checks that it is
# there, so the tests use no network; without it the test fails, not skips.
set(ENTPROG_VAE_VENV $ENV{HOME}/.cache/entprog/venv-diffusers CACHE PATH "the venv with diffusers (scripts/install-deps.sh)")
add_test(NAME vae_venv COMMAND sh ${PROJECT_SOURCE_DIR}/tests/vae_venv.sh --check ${ENTPROG_VAE_VENV})
set_tests_properties(vae_venv PROPERTIES LABELS vae TIMEOUT 600 FIXTURES_SETUP vae_diffusers)
add_test(NAME vae_parity
         COMMAND ${ENTPROG_VAE_VENV}/bin/python ${PROJECT_SOURCE_DIR}/tests/check_vae.py $<TARGET_FILE:entprog>
                 ${CMAKE_BINARY_DIR}/test-work/vae)
set_tests_properties(vae_parity PROPERTIES LABELS vae TIMEOUT 120 FIXTURES_REQUIRED vae_diffusers
                     ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;HDF5_USE_FILE_LOCKING=FALSE;OPENBLAS_NUM_THREADS=1")
