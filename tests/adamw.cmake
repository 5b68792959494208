# Five AdamW steps of the C model against the PyTorch reference fixture.
add_executable(test_adamw_ref ${PROJECT_SOURCE_DIR}/tests/test_adamw_ref.c)
target_link_libraries(test_adamw_ref PRIVATE entprog_core)
add_test(NAME reference_adamw COMMAND test_adamw_ref ${PROJECT_SOURCE_DIR}/tests/fixtures)
set_tests_properties(reference_adamw PROPERTIES LABELS "reference"
  ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;HDF5_USE_FILE_LOCKING=FALSE")
