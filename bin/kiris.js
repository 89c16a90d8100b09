#!/usr/bin/env node
// Launches the TypeScript entry point through tsx's loader (Node 20 cannot strip types itself).
import { register } from "tsx/esm/api"
register()
await import("../src/main.ts")
