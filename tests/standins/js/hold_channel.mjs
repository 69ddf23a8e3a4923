// Holds one realtime-js channel subscribed while something else happens (a deploy), sending
// a numbered broadcast to itself every <interval> ms, and reports what the client saw.
//
// Usage: node hold_channel.mjs <socket-url> <apikey> [interval-ms]
// Prints one line per observation, for the caller to follow:
//   socket open <n>            the n-th WebSocket this client opened
//   socket close <n> <code>    the n-th WebSocket closed (any close counts as a drop)
//   status <STATE>             the channel's subscribe callback (SUBSCRIBED, CHANNEL_ERROR, ...)
//   echo <seq>                 broadcast <seq> came back (self: true)
// Write "stop" on stdin: sending stops, echoes still in flight get 2 s, then one line
//   summary {"sent":..,"acked":..,"echoed":..,"lost":[..],"statuses":[..],"opened":..,"closed":..}
// and exit 0. Exits 1 if not told to stop within 300 s.
// Every WebSocket goes through a counting subclass of ws's, so a close is seen whatever the
// client does about it (realtime-js reconnects on its own and would otherwise hide it).
import { createInterface } from 'node:readline'
import { RealtimeClient } from '@supabase/realtime-js'
import WebSocket from 'ws'

const [url, apikey, intervalArg] = process.argv.slice(2)
const interval = Number(intervalArg || 100)

let opened = 0
let closed = 0
class CountingWebSocket extends WebSocket {
  constructor(...args) {
    super(...args)
    const n = ++opened
    this.on('open', () => console.log(`socket open ${n}`))
    this.on('close', (code) => {
      closed++
      console.log(`socket close ${n} ${code}`)
    })
  }
}

const client = new RealtimeClient(url, { params: { apikey }, transport: CountingWebSocket })
const channel = client.channel('held', { config: { broadcast: { self: true, ack: true } } })

const statuses = []
const echoed = new Set()
const acks = new Map()
let sent = 0
let ticker = null

const send = async () => {
  const seq = ++sent
  acks.set(seq, await channel.send({ type: 'broadcast', event: 'tick', payload: { seq } }))
}

channel
  .on('broadcast', { event: 'tick' }, (message) => {
    echoed.add(message.payload.seq)
    console.log(`echo ${message.payload.seq}`)
  })
  .subscribe((status, err) => {
    statuses.push(status)
    console.log(`status ${status}${err ? ` ${err.message}` : ''}`)
    if (status === 'SUBSCRIBED' && ticker === null) ticker = setInterval(send, interval)
  })

const stop = () => {
  clearInterval(ticker)
  setTimeout(() => {
    const lost = []
    for (let seq = 1; seq <= sent; seq++) if (!echoed.has(seq)) lost.push(seq)
    const acked = [...acks.values()].filter((ack) => ack === 'ok').length
    const summary = { sent, acked, echoed: echoed.size, lost, statuses, opened, closed }
    console.log(`summary ${JSON.stringify(summary)}`)
    client.disconnect()
    process.exit(0)
  }, 2000)
}

createInterface({ input: process.stdin }).on('line', (line) => line.trim() === 'stop' && stop())
setTimeout(() => {
  console.log('timeout: never told to stop')
  process.exit(1)
}, 300000)
