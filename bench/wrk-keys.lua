-- wrk script: rotate API keys (and each user's collection) across requests.
-- BENCH_KEYS: the file `music-admin seed --keys-file` wrote (org, user, key, collection per line).
-- BENCH_PATH: the request path; {org} and {collection} are replaced per key.
local keys, paths = {}, {}
local template = os.getenv("BENCH_PATH")
for line in io.lines(os.getenv("BENCH_KEYS")) do
  if line:sub(1, 1) ~= "#" then
    local org, _, key, collection = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t?([^\t]*)$")
    if key then
      keys[#keys + 1] = key
      local path = template:gsub("{org}", org):gsub("{collection}", collection)
      paths[#paths + 1] = path
    end
  end
end
local n = 0
function setup(thread)
  thread:set("offset", math.random(0, #keys - 1))
end
function init(args)
  n = tonumber(offset) or 0
end
function request()
  n = n + 1
  local i = (n % #keys) + 1
  return wrk.format("GET", paths[i], { ["X-API-Key"] = keys[i] })
end
