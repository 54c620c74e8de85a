server.on('connection', async (connection) => {
  // Exit the process with a specific code
  await connection.exit(0)
})
