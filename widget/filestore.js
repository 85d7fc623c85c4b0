// The bytes of files waiting to be sent, kept across a reload: localStorage holds only
// strings (and ~5 MB), IndexedDB holds Blobs. One database per site key (the same name
// as the localStorage key), one object store: key -> Blob. Loaded with uploads.js.
const VERSION = 1;
const STORE = 'files';

// One transaction on a connection of its own, closed after: no handle outlives a call,
// so deleting the database (the visitor erased the conversation) is never blocked.
// Rejects when IndexedDB is unavailable (some private modes, blocked storage).
export async function run(name, mode, action) {
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open(name, VERSION);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  try {
    return await new Promise((resolve, reject) => {
      const transaction = db.transaction(STORE, mode);
      const request = action(transaction.objectStore(STORE));
      // `action` may make several requests (or none): their result is not wanted then.
      transaction.oncomplete = () => resolve(request?.result);
      transaction.onerror = transaction.onabort = () => reject(transaction.error);
    });
  } finally {
    db.close();
  }
}
