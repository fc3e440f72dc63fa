import { defineConfig } from 'vite';

// The Rust server embeds dist/ and serves index.html at `/`; hash routing means it needs no route knowledge.
// `npm run dev` proxies the API and Socket.IO to a server on MISSIVE_DEV_SERVER (default 127.0.0.1:8000).
const backend = process.env.MISSIVE_DEV_SERVER ?? 'http://127.0.0.1:8000';

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // The client, and the API reference page served at /api/v1/docs.
    rollupOptions: { input: { main: 'index.html', docs: 'docs.html' } },
  },
  server: {
    proxy: {
      '/api': backend,
      '/healthz': backend,
      '/socket.io': { target: backend, ws: true },
    },
  },
});
