// Conformance check: the official realtime-js client receives an INSERT made in the database.
//
// Usage: node insert_event.mjs <socket-url> <apikey> <schema> <table>
// Prints "status SUBSCRIBED", then "system ok Subscribed to PostgreSQL" (the caller then
// inserts a row with psql), then "insert <record as JSON>" for the first INSERT event, and
// exits 0; exits 1 on a channel error or after 20 s.
import { RealtimeClient } from '@supabase/realtime-js'
import WebSocket from 'ws'

const [url, apikey, schema, table] = process.argv.slice(2)
const client = new RealtimeClient(url, { params: { apikey }, transport: WebSocket })
const channel = client.channel('insert-event')

const finish = (code) => {
  client.disconnect()
  process.exit(code)
}
setTimeout(() => {
  console.log('timeout')
  finish(1)
}, 20000)

channel
  .on('postgres_changes', { event: 'INSERT', schema, table }, (payload) => {
    console.log(`insert ${JSON.stringify(payload.new)}`)
    finish(0)
  })
  .on('system', {}, (payload) => {
    console.log(`system ${payload.status} ${payload.message}`)
  })
  .subscribe((status, err) => {
    console.log(`status ${status}${err ? ` ${err.message}` : ''}`)
    if (status !== 'SUBSCRIBED') finish(1)
  })
