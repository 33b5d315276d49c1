# call-peer: one source, two plugins (the name and the owned URI scheme are compile definitions).
foreach(jn_call_peer_side a b)
  junction_add_plugin(call-peer-${jn_call_peer_side} ${CMAKE_CURRENT_LIST_DIR}/call_peer.cpp)
  target_compile_definitions(call-peer-${jn_call_peer_side} PRIVATE
    CALL_PEER_NAME="call-peer-${jn_call_peer_side}" CALL_PEER_NAMESPACE="peer${jn_call_peer_side}")
endforeach()
