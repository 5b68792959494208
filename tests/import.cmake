# `entprog import-video` (label: import): real H.264 MP4 files (Debian's ffmpeg) and OpenPose JSON, or rendered
# pose videos, made from the synthetic dancers, imported and checked against the source frames and poses; fps resampling, the
# person crop, 2 MPI ranks, every bad input with its message, and 3 training steps on the imported folder.
add_test(NAME import_video
         COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_import.py
                 --entprog $<TARGET_FILE:entprog> --mpiexec ${MPIEXEC_EXECUTABLE}
                 --work ${CMAKE_BINARY_DIR}/test-work/import-video)
set_tests_properties(import_video PROPERTIES LABELS import TIMEOUT 300
  ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;HDF5_USE_FILE_LOCKING=FALSE;OPENBLAS_NUM_THREADS=1;OMP_NUM_THREADS=1")
