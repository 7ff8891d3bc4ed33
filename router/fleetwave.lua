-- fleetwave.lua: the routing rules of the apps fleetwave router fronts, run by HAProxy (lua-load) for every request.
--
-- The router sets an app's rules on the admin socket, so a rule change is a Runtime API call and never a reload:
--   fleetwave rules set <app> <token>   answers "ok", or "error: ..." and keeps the rules it had
--   fleetwave rules show <app>          answers the token in force ("-" for none)
--   fleetwave version                   answers "fleetwave.lua <n>"
-- The app's frontend runs `http-request lua.fw_route <app>`, which sets
--   txn.fw_edition  the edition of the first rule the request matches (left unset when none does);
--   txn.fw_cookie   a Set-Cookie value when a percent rule needed a sticky bucket the client did not have yet.
-- The token's format is written down in router/rules.ts, which makes it.

local VERSION = "1"
local BUCKETS = 10000
local COOKIE_MAX_AGE = 31536000
local GOLDEN = 0.6180339887498949

-- app -> { token = string, rules = { {kind, edition, name, value, ...} } }
local apps = {}

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- Splits on a plain separator, keeping empty fields.
local function split(s, sep)
  local out, start = {}, 1
  while true do
    local i = string.find(s, sep, start, true)
    if not i then
      out[#out + 1] = s:sub(start)
      return out
    end
    out[#out + 1] = s:sub(start, i - 1)
    start = i + 1
  end
end

local function parse(token)
  local compiled = { token = token, rules = {} }
  if token == "-" then return compiled end
  for _, entry in ipairs(split(token, "|")) do
    local f = split(entry, ",")
    if #f ~= 4 then return nil, "rule '" .. entry .. "' does not have 4 fields" end
    local rule = { kind = unescape(f[1]), edition = unescape(f[2]), name = unescape(f[3]), value = unescape(f[4]) }
    if rule.edition == "" then return nil, "a rule has no edition" end
    if rule.kind == "source" then
      rule.net = core.parse_addr(rule.value)
      if not rule.net then return nil, "'" .. rule.value .. "' is not an address or network" end
    elseif rule.kind == "percent" then
      local lo, hi = rule.value:match("^(%d+)%-(%d+)$")
      if not lo then return nil, "percent range '" .. rule.value .. "' is not lo-hi" end
      rule.lo, rule.hi = tonumber(lo), tonumber(hi)
    elseif rule.kind ~= "header" and rule.kind ~= "cookie" and rule.kind ~= "path-prefix" then
      return nil, "unknown rule kind '" .. rule.kind .. "'"
    end
    compiled.rules[#compiled.rules + 1] = rule
  end
  return compiled
end

-- A prefix matches whole path segments: "/beta" matches "/beta" and "/beta/x", not "/betamax".
local function path_matches(path, prefix)
  if path:sub(1, #prefix) ~= prefix then return false end
  if #path == #prefix or prefix:sub(-1) == "/" then return true end
  return path:sub(#prefix + 1, #prefix + 1) == "/"
end

-- New clients get buckets from a golden-ratio sequence rather than independent draws: any run of new clients
-- spreads evenly over the buckets, so a 5 % rule gets 5 % of them, not 5 % give or take chance.
local now = core.now()
math.randomseed(os.time() + (now.usec or 0))
local weyl = math.random()
local function next_bucket()
  weyl = (weyl + GOLDEN) % 1
  return math.floor(weyl * BUCKETS)
end

-- The client's bucket from its cookie, or a new one (and true) when it has none that is valid.
local function sticky_bucket(txn, cookie)
  local text = txn.sf:req_cook(cookie)
  if text and text:match("^%d+$") then
    local bucket = tonumber(text)
    if bucket < BUCKETS then return bucket, false end
  end
  return next_bucket(), true
end

local function source_of(txn)
  local src = txn.sf:src() or ""
  -- An IPv4 client on an IPv6 listener shows as ::ffff:a.b.c.d; IPv4 networks must still match it.
  src = src:match("^::[fF][fF][fF][fF]:(%d+%.%d+%.%d+%.%d+)$") or src
  return core.parse_addr(src)
end

local function matches(txn, rule, seen, cookie)
  local kind = rule.kind
  if kind == "header" then
    seen.headers = seen.headers or txn.http:req_get_headers()
    local values = seen.headers[rule.name]
    if values then
      for _, v in pairs(values) do
        if v == rule.value then return true end
      end
    end
    return false
  elseif kind == "cookie" then
    return txn.sf:req_cook(rule.name) == rule.value
  elseif kind == "path-prefix" then
    return path_matches(txn.sf:path() or "", rule.value)
  elseif kind == "source" then
    if seen.src == nil then seen.src = source_of(txn) or false end
    return seen.src ~= false and core.match_addr(rule.net, seen.src)
  elseif kind == "percent" then
    if seen.bucket == nil then seen.bucket, seen.fresh = sticky_bucket(txn, cookie) end
    return seen.bucket >= rule.lo and seen.bucket < rule.hi
  end
  return false
end

core.register_action("fw_route", { "http-req" }, function(txn, app)
  local compiled = apps[app]
  if compiled == nil or #compiled.rules == 0 then return end
  local cookie = "fw_" .. app
  local seen = {}
  for _, rule in ipairs(compiled.rules) do
    if matches(txn, rule, seen, cookie) then
      txn:set_var("txn.fw_edition", rule.edition)
      break
    end
  end
  if seen.fresh then
    txn:set_var("txn.fw_cookie", cookie .. "=" .. seen.bucket .. "; Path=/; Max-Age=" .. COOKIE_MAX_AGE .. "; SameSite=Lax")
  end
end, 1)

core.register_cli({ "fleetwave", "rules", "set" }, "fleetwave rules set <app> <token>  : set an app's routing rules (fleetwave router)",
  function(applet, _, _, _, app, token)
    if app == nil or token == nil then
      applet:send("error: usage: fleetwave rules set <app> <token>\n")
      return
    end
    local compiled, err = parse(token)
    if compiled == nil then
      applet:send("error: " .. err .. "\n")
      return
    end
    apps[app] = compiled
    applet:send("ok\n")
  end)

core.register_cli({ "fleetwave", "rules", "show" }, "fleetwave rules show <app>         : an app's routing rules in force",
  function(applet, _, _, _, app)
    local compiled = app and apps[app]
    applet:send((compiled and compiled.token or "-") .. "\n")
  end)

core.register_cli({ "fleetwave", "version" }, "fleetwave version                  : version of fleetwave.lua",
  function(applet)
    applet:send("fleetwave.lua " .. VERSION .. "\n")
  end)
