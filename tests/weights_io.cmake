# Weights in and out (docs/weights.md): safetensors export / load / refusal, DiT import (label: weights).
set(ENTPROG_WEIGHTS_ENV "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;HDF5_USE_FILE_LOCKING=FALSE;OPENBLAS_NUM_THREADS=1")
add_test(NAME weights_safetensors
         COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_safetensors.py $<TARGET_FILE:entprog>
                 ${PROJECT_SOURCE_DIR}/tests/fixtures ${PROJECT_SOURCE_DIR}/inputs/tiny.ini
                 ${CMAKE_BINARY_DIR}/test-work/weights_safetensors)
add_test(NAME weights_dit_import
         COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_dit_import.py $<TARGET_FILE:entprog>
                 ${PROJECT_SOURCE_DIR}/tools/dit_pt_to_safetensors.py ${CMAKE_BINARY_DIR}/test-work/weights_dit_import)
set_tests_properties(weights_safetensors weights_dit_import PROPERTIES LABELS weights TIMEOUT 300
                     ENVIRONMENT "${ENTPROG_WEIGHTS_ENV}")
