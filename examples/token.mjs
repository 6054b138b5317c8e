import { readFileSync } from "node:fs"
import jwt from "jsonwebtoken"

// The secret is the file's bytes minus one trailing "\n" or "\r\n" (docs/tokens.md),
// kept as bytes (a Buffer), so any byte value signs as the plugin verifies.
const file = readFileSync(process.env.CABLE_JWT_SECRET_FILE)
const newline = file.at(-1) === 0x0a ? (file.at(-2) === 0x0d ? 2 : 1) : 0
const secret = file.subarray(0, file.length - newline)
const token = jwt.sign({ sub: "alice" }, secret, { algorithm: "HS256", expiresIn: "1h" })
console.log(token)
