-- spec/support/codec.lua: the busted helper (.busted).  Engine modules
-- `require "sio.json"`, the C codec the sandbox preloads; loading
-- sio.testing registers the same codec (from sio_core.so) in busted's state.
require "sio.testing"
