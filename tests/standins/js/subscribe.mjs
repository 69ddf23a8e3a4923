// Conformance check: the official realtime-js client against the Realtime stand-in.
//
// Usage: node subscribe.mjs <socket-url> <apikey> [--like-supabase-js]
//   e.g. node subscribe.mjs ws://127.0.0.1:4000/socket eyJ...
// --like-supabase-js: also give the client supabase-js's accessToken callback, which returns
// the API key when there is no signed-in session (supabase-js SupabaseClient._getAccessToken),
// so the join's access_token is the key itself, e.g. sb_publishable_...
// Prints one line per observation ("status SUBSCRIBED", "system ok Subscribed to PostgreSQL",
// "broadcast ok", "echo {...}") and exits 0 once the round trip is done, 1 on a channel
// error or after 8 s. realtime-js appends /websocket and sends vsn=2.0.0, so this also
// exercises the V2 array frames and the binary broadcast frames.
import { RealtimeClient } from '@supabase/realtime-js'
import WebSocket from 'ws'

const [url, apikey, mode] = process.argv.slice(2)
const accessToken = mode === '--like-supabase-js' ? async () => apikey : undefined
const client = new RealtimeClient(url, { params: { apikey }, transport: WebSocket, accessToken })
const channel = client.channel('conformance', { config: { broadcast: { self: true, ack: true } } })

const finish = (code) => {
  client.disconnect()
  process.exit(code)
}
setTimeout(() => {
  console.log('timeout')
  finish(1)
}, 8000)

let systemSeen = false
let echoSeen = false
let ackSeen = false
const maybeDone = () => systemSeen && echoSeen && ackSeen && finish(0)

channel
  .on('postgres_changes', { event: '*', schema: 'public', table: 'wells' }, () => {})
  .on('system', {}, (payload) => {
    console.log(`system ${payload.status} ${payload.message}`)
    systemSeen = true
    maybeDone()
  })
  .on('broadcast', { event: 'ping' }, (message) => {
    console.log(`echo ${JSON.stringify(message.payload)}`)
    echoSeen = true
    maybeDone()
  })
  .subscribe(async (status, err) => {
    console.log(`status ${status}${err ? ` ${err.message}` : ''}`)
    if (status !== 'SUBSCRIBED') finish(1)
    const ack = await channel.send({ type: 'broadcast', event: 'ping', payload: { n: 1 } })
    console.log(`broadcast ${ack}`)
    ackSeen = ack === 'ok'
    maybeDone()
  })
