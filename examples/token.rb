require "jwt"

# The secret is the file's bytes minus one trailing "\n" or "\r\n" (docs/tokens.md).
secret = File.binread(ENV.fetch("CABLE_JWT_SECRET_FILE")).sub(/\r?\n\z/, "")
token = JWT.encode({ sub: "alice", exp: Time.now.to_i + 3600 }, secret, "HS256")
puts token
