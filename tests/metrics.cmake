# metrics.csv's columns: one definition (src/train/metrics.c), the docs and the plot tools follow it.
add_test(NAME metrics_columns COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_metrics_columns.py
         ${PROJECT_SOURCE_DIR} $<TARGET_FILE:entprog>)
set_tests_properties(metrics_columns PROPERTIES LABELS layout TIMEOUT 120
                     ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")
