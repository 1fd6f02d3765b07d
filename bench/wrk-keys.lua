-- wrk script: rotate API keys (and each user's collection and saved track) across requests.
-- BENCH_KEYS: the file `music-admin seed --keys-file` wrote (org, user, key, collection per line),
-- or bench/run's copy with a fifth column, a track that user saved.
-- BENCH_PATH: the request path; {org}, {collection} and {track} are replaced per key.
local keys, paths = {}, {}
local template = os.getenv("BENCH_PATH")
for line in io.lines(os.getenv("BENCH_KEYS")) do
  if line:sub(1, 1) ~= "#" then
    local org, _, key, collection, track = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t?([^\t]*)\t?([^\t]*)$")
    if key then
      keys[#keys + 1] = key
      local path = template:gsub("{org}", org):gsub("{collection}", collection):gsub("{track}", track)
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
-- BENCH_RANGE (optional): a Range header for every request, e.g. "bytes=0-65535" (a player's chunk).
local range = os.getenv("BENCH_RANGE")
function request()
  n = n + 1
  local i = (n % #keys) + 1
  local headers = { ["X-API-Key"] = keys[i] }
  if range and range ~= "" then headers["Range"] = range end
  return wrk.format("GET", paths[i], headers)
end
