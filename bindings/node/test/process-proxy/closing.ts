server.on('connection', async (connection) => {
  connection.stdin.end()
})
