// PM2: two workers in cluster mode, so `pm2 reload backend` replaces them one
// at a time without dropping requests.
module.exports = {
  apps: [{
    name: 'backend',
    script: 'server.js',
    cwd: __dirname,
    exec_mode: 'cluster',
    instances: 2,
    wait_ready: true,
    listen_timeout: 10000,
    kill_timeout: 6000,
  }],
}
