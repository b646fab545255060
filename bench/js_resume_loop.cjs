// The official JS client's documented resume-all loop (@upstash/workflow, src/client/dlq.ts,
// the doc comment of `resume`): call resume with a filter until the answer has no cursor.
// Run by bench/redrive_bench.py with NODE_PATH pointing at an `npm install` of the package.
//   node bench/js_resume_loop.cjs <base url> <token> <fromDate ms>
const { Client } = require("@upstash/workflow");

async function main() {
  const [baseUrl, token, fromDate] = process.argv.slice(2);
  const client = new Client({ baseUrl, token });
  await client.dlq.list({ count: 1 }); // warm the connection, like the other sides
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  let cursor;
  let runs = 0;
  let calls = 0;
  do {
    const answer = await client.dlq.resume({ filter: { fromDate: Number(fromDate) }, count: 100, cursor });
    cursor = answer.cursor;
    runs += answer.workflowRuns.length;
    calls += 1;
  } while (cursor);
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  const used = process.cpuUsage(cpu);
  process.stdout.write(
    JSON.stringify({ wallMs, cpuMs: (used.user + used.system) / 1000, runs, calls }) + "\n",
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
