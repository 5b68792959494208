# Every path and relative link named in README.md and docs/*.md exists
# (tests/check_doc_paths.py); the self-test plants missing ones (label: layout).
add_test(NAME doc_paths COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_doc_paths.py ${PROJECT_SOURCE_DIR})
add_test(NAME doc_paths_selftest COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/check_doc_paths.py --self-test)
set_tests_properties(doc_paths doc_paths_selftest PROPERTIES LABELS layout TIMEOUT 60)
