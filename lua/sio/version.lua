-- sio.version: the engine's version, shared by the host and the test harness.
return { major = 0, minor = 1, patch = 0, string = "0.1.0" }
