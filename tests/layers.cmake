# The folders of src/ (with mpi/ and cuda/) have no include cycle (tests/check_layers.py, docs/layout.md).
add_test(NAME layers COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_layers.py ${PROJECT_SOURCE_DIR})
add_test(NAME layers_selftest COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_layers.py --self-test)
set_tests_properties(layers layers_selftest PROPERTIES LABELS layout TIMEOUT 60)
