-- The work Kong's aws-lambda plugin does per request, on the stack Kong runs on (nginx +
-- lua-nginx-module on LuaJIT), as a load-test peer for lambda-gateway (tools/loadtest):
--
--   query and body arguments merged ("Sending parameters" mode), encoded with cjson;
--   SigV4 with HMAC-SHA256 (luaossl), the signing key cached per day as lua-resty-aws does;
--   Invoke over TLS with keep-alive on cosockets (verified against lua_ssl_trusted_certificate);
--   Lambda's status, headers and body passed to the client.
--
-- It is a peer for measuring, not a product: no retries, no proxy integration, one config.

local cjson = require "cjson.safe"
local digest = require "openssl.digest"
local hmac = require "openssl.hmac"
local ffi = require "ffi"

local _M = {}

-- Hex encoding through nginx's own ngx_hex_dump, as lua-resty-string's to_hex does.
ffi.cdef [[
  unsigned char *ngx_hex_dump(unsigned char *dst, const unsigned char *src, size_t len);
]]
local hex_buf = ffi.new("unsigned char[?]", 128)

local function hex(bytes)
  local n = #bytes
  local dst = n * 2 <= 128 and hex_buf or ffi.new("unsigned char[?]", n * 2)
  ffi.C.ngx_hex_dump(dst, bytes, n)
  return ffi.string(dst, n * 2)
end

local function sha256_hex(data)
  return hex(digest.new("sha256"):final(data))
end

local function hmac_sha256(key, data)
  return hmac.new(key, "sha256"):final(data)
end

-- Signing keys per (secret, date, region), as lua-resty-aws caches them.
local signing_keys = {}

local function signing_key(secret, date, region)
  local id = secret .. "|" .. date .. "|" .. region
  local key = signing_keys[id]
  if not key then
    key = hmac_sha256(hmac_sha256(hmac_sha256(hmac_sha256("AWS4" .. secret, date), region), "lambda"), "aws4_request")
    signing_keys = { [id] = key } -- one day's key is all a process needs
  end
  return key
end

-- Kong's kong.request.get_body(): JSON, urlencoded; nil for other types.
local function body_args()
  local ctype = ngx.var.content_type
  if not ctype then
    return nil
  end
  ctype = ctype:lower():match("^%s*([^;%s]+)")
  if ctype == "application/json" then
    local body = ngx.req.get_body_data()
    if not body then
      return nil
    end
    local args = cjson.decode(body)
    if type(args) ~= "table" then
      return nil
    end
    return args
  elseif ctype == "application/x-www-form-urlencoded" then
    return ngx.req.get_post_args()
  end
  return nil
end

local function read_response(sock)
  local line, err = sock:receive("*l")
  if not line then
    return nil, "reading the status line: " .. tostring(err)
  end
  local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
  if not status then
    return nil, "bad status line"
  end
  local headers, length, close = {}, nil, false
  while true do
    local h
    h, err = sock:receive("*l")
    if not h then
      return nil, "reading headers: " .. tostring(err)
    end
    if h == "" then
      break
    end
    local name, value = h:match("^([^:]+):%s*(.-)%s*$")
    if name then
      local lower = name:lower()
      if lower == "content-length" then
        length = tonumber(value)
      elseif lower == "connection" then
        close = value:lower() == "close"
      elseif lower ~= "transfer-encoding" and lower ~= "keep-alive" then
        headers[name] = value
      end
    end
  end
  local body = ""
  if length and length > 0 then
    body, err = sock:receive(length)
    if not body then
      return nil, "reading the body: " .. tostring(err)
    end
  end
  return { status = status, headers = headers, body = body, close = close }
end

-- Invokes conf.function_name with the request's arguments and answers the client.
function _M.invoke(conf)
  ngx.req.read_body()
  local args = ngx.req.get_uri_args()
  local body = body_args()
  if body then
    for k, v in pairs(body) do
      args[k] = v
    end
  end
  local payload = cjson.encode(args)

  local now = ngx.time()
  local amz_date = os.date("!%Y%m%dT%H%M%SZ", now)
  local date = amz_date:sub(1, 8)
  local host = conf.host_header
  local path = "/2015-03-31/functions/" .. conf.function_name .. "/invocations"
  local canonical = table.concat({
    "POST", path, "",
    "content-length:" .. #payload,
    "content-type:application/json",
    "host:" .. host,
    "x-amz-date:" .. amz_date,
    "x-amz-invocation-type:RequestResponse",
    "x-amz-log-type:None",
    "",
    "content-length;content-type;host;x-amz-date;x-amz-invocation-type;x-amz-log-type",
    sha256_hex(payload),
  }, "\n")
  local scope = date .. "/" .. conf.region .. "/lambda/aws4_request"
  local to_sign = "AWS4-HMAC-SHA256\n" .. amz_date .. "\n" .. scope .. "\n" .. sha256_hex(canonical)
  local signature = hex(hmac_sha256(signing_key(conf.secret, date, conf.region), to_sign))
  local request = table.concat({
    "POST ", path, " HTTP/1.1\r\n",
    "Host: ", host, "\r\n",
    "Content-Type: application/json\r\n",
    "Content-Length: ", #payload, "\r\n",
    "X-Amz-Invocation-Type: RequestResponse\r\n",
    "X-Amz-Log-Type: None\r\n",
    "X-Amz-Date: ", amz_date, "\r\n",
    "Authorization: AWS4-HMAC-SHA256 Credential=", conf.key, "/", scope,
    ", SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-invocation-type;x-amz-log-type",
    ", Signature=", signature, "\r\n\r\n",
    payload,
  })

  local sock = ngx.socket.tcp()
  sock:settimeouts(conf.timeout, conf.timeout, conf.timeout)
  local ok, err = sock:connect(conf.address, conf.port)
  if not ok then
    ngx.log(ngx.ERR, "connect: ", err)
    return ngx.exit(502)
  end
  if sock:getreusedtimes() == 0 then
    ok, err = sock:sslhandshake(nil, conf.sni, true)
    if not ok then
      ngx.log(ngx.ERR, "TLS: ", err)
      return ngx.exit(502)
    end
  end
  ok, err = sock:send(request)
  if not ok then
    ngx.log(ngx.ERR, "send: ", err)
    return ngx.exit(502)
  end
  local res
  res, err = read_response(sock)
  if not res then
    ngx.log(ngx.ERR, err)
    sock:close()
    return ngx.exit(502)
  end
  if res.close then
    sock:close()
  else
    sock:setkeepalive(conf.keepalive, 64)
  end
  ngx.status = res.status
  for name, value in pairs(res.headers) do
    ngx.header[name] = value
  end
  ngx.header["Content-Length"] = #res.body
  ngx.print(res.body)
  return ngx.exit(ngx.HTTP_OK)
end

return _M
