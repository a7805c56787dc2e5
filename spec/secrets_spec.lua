-- Configuration and secrets for workflows (sio.config / sio.secret,
-- ${config.x} / ${secret.x}) through the harness: the stubs give the
-- values, a secret reaches the request it is rendered into and nothing
-- the run hands back (result, error, step results, logs), a workflow
-- reads only the names it lists, and a name with no value fails the step
-- permanently.
local testing = require "sio.testing"
local H = require "support.helpers"

local USERS = [[
intent: users
config: [users_url]
secrets: [users_token]
steps:
  - id: fetch
    tool:
      name: http
      args:
        url: "${config.users_url}/users/${A.id}"
        headers: {Authorization: "Bearer ${secret.users_token}"}
    publish_result: true
  - id: echo_it
    run: |
      sio.log("info", "calling with " .. sio.secret("users_token"), { token = sio.secret("users_token") })
      return { url = sio.config("users_url"), token = sio.secret("users_token") }
    publish_result: true
output:
  token: "${secret.users_token}"
]]

local OTHER = [[
intent: other
steps:
  - id: peek
    run: return sio.secret("users_token")
]]

local TOKEN = "tok-3f9a-Bearer/=="

describe("workflow config and secrets", function()
  local h, seen
  before_each(function()
    h = testing.new({ root = "/nonexistent", intent = "users", http_allow = "users.example,a.example" })
    h:add_workflow(USERS, "users.yaml")
    h:add_workflow(OTHER, "other.yaml")
    seen = nil
    h:stub("http", function(req) seen = req; return { status = 200, json = { echoed = req.headers.authorization } } end)
  end)

  it("renders a secret into a header and a config value into the URL, as sent", function()
    h:stub("config", { users_url = "https://users.example/v1" })
    h:stub("secret", { users_token = TOKEN })
    local r = h:run({ id = "7" })
    r:expect_ok()
    assert.are.equal("https://users.example/v1/users/7", seen.url)
    assert.are.equal("Bearer " .. TOKEN, seen.headers.authorization)
    assert.are.equal("Bearer " .. TOKEN, r:args("fetch").headers.Authorization) -- the args as sent
  end)

  it("keeps the secret out of everything the run hands back", function()
    h:stub("config", { users_url = "https://users.example/v1" })
    h:stub("secret", { users_token = TOKEN })
    local r = h:run({ id = "7" })
    r:expect_ok()
    local everything = table.concat({ r.text, table.concat(r.lines, "\n"),
      require("cjson").encode(r.published), require("cjson").encode(r.logs) }, "\n")
    assert.is_nil(everything:find("tok-3f9a", 1, true), everything)
    assert.are.equal("[redacted:users_token]", r.result.token)
    assert.are.equal("[redacted:users_token]", require("cjson").decode(r.published[2].payload).token)
    -- the http step's payload held the token JSON-encoded (its '/' as '\/'): redacted too
    assert.is_truthy(r.published[1].payload:find("Bearer [redacted:users_token]", 1, true), r.published[1].payload)
    local logged
    for _, l in ipairs(r.logs) do if type(l) == "table" and l.msg and l.msg:find("calling with") then logged = l end end
    assert.are.equal("calling with [redacted:users_token]", logged.msg)
    assert.are.equal("[redacted:users_token]", logged.token)
  end)

  it("fails permanently, naming the name and where to set it, when a listed value is not given", function()
    h:stub("secret", { users_token = TOKEN })
    local r = h:run({ id = "7" })
    r:expect_error("permanent", "config 'users_url' is not set %(stub it: h:stub%(\"config\", {users_url = %.%.%.}%)%)", "fetch")
  end)

  it("refuses a name the workflow does not list, even when the value exists", function()
    h:stub("secret", { users_token = TOKEN })
    local r = h:run("other", {})
    r:expect_error("permanent", "workflow 'other' may not read secret 'users_token': list it under `secrets:` in other.yaml", "peek")
    assert.is_nil(r.text:find("tok-3f9a", 1, true))
  end)

  it("refuses at load a template naming a secret the workflow does not list", function()
    local _, all = H.load_errors([[
intent: sneaky
steps:
  - id: s1
    tool: {name: echo, args: {h: "${secret.users_token}"}}
]], "sneaky.yaml")
    assert.is_truthy(all:find("sneaky.yaml:4: step s1: step s1 args.h: ${secret.users_token}: secret 'users_token' is not listed under `secrets:` in the workflow", 1, true), all)
    _, all = H.load_errors("intent: t\nconfig: [a]\nsteps: [{id: s1, tool: echo}]\noutput: {x: '${config.b}'}\n", "t.yaml")
    assert.is_truthy(all:find("${config.b}: config 'b' is not listed under `config:`", 1, true), all)
    _, all = H.load_errors("intent: t\nsteps: [{id: s1, tool: {name: echo, args: {x: '${secret}'}}}]\n", "t.yaml")
    assert.is_truthy(all:find("bad template path 'secret' (expected A.key.sub..., config.name or secret.name)", 1, true), all)
  end)

  it("takes values from the options, and reset goes back to them", function()
    local h2 = testing.new({ root = "/nonexistent", intent = "users", http_allow = "a.example", config = { users_url = "https://a.example" },
                             secrets = { users_token = "from-opts" } })
    h2:add_workflow(USERS, "users.yaml")
    h2:stub("http", { status = 200, body = "{}" })
    h2:stub("secret", { users_token = "from-stub" })
    assert.are.equal("[redacted:users_token]", h2:run({ id = "1" }).result.token)
    local out = h2:run({ id = "1" })
    assert.are.equal("from-stub", out.steps.echo_it and require("cjson").decode(out.steps.echo_it.payload).token)
    h2:reset()
    h2:stub("http", { status = 200, body = "{}" })
    out = h2:run({ id = "1" })
    assert.are.equal("from-opts", require("cjson").decode(out.steps.echo_it.payload).token)
    assert.are.equal("https://a.example", require("cjson").decode(out.steps.echo_it.payload).url)
  end)

  it("checks the names a workflow lists", function()
    local _, all = H.load_errors('intent: b\nsecrets: ["has space"]\nsteps: [{id: s1, tool: echo}]\n', "b.yaml")
    assert.is_truthy(all:find("b.yaml:2: secrets: has space is not a name (1-64 of A-Z a-z 0-9 _ -)", 1, true), all)
    _, all = H.load_errors('intent: b\nconfig: users_url\nsteps: [{id: s1, tool: echo}]\n', "b.yaml")
    assert.is_truthy(all:find("b.yaml:2: config must be a list of names", 1, true), all)
  end)
end)
