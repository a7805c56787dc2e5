# Helpers shared by src/ and tests/.

# sio_embed_lua(OUT_VAR FILES...): compile the shipped Lua sources into a C
# file (one string per module) so the binary is self-contained.
function(sio_embed_lua out_var)
  set(out "${CMAKE_BINARY_DIR}/embedded_lua.c")
  add_custom_command(
    OUTPUT "${out}"
    COMMAND "${CMAKE_COMMAND}" -DOUT=${out} -DROOT=${CMAKE_SOURCE_DIR}/lua
            "-DFILES=${ARGN}" -P "${CMAKE_SOURCE_DIR}/cmake/embed.cmake"
    DEPENDS ${ARGN} "${CMAKE_SOURCE_DIR}/cmake/embed.cmake"
    COMMENT "Embedding shipped Lua sources"
    VERBATIM)
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()
