junction_add_plugin(worker-test ${CMAKE_CURRENT_LIST_DIR}/worker_test.cpp)
