// The server's JSON API. Every request is same-origin, so the browser sends the Basic
// credentials it was given for the page itself, and (for the routes that change state)
// Sec-Fetch-Site: same-origin, which the server's cross-site check allows.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

export async function call(method, path, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError("the server cannot be reached", 0);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // Not JSON (a proxy's error page, say): the status line says enough.
  }
  if (!response.ok) {
    const message = data && typeof data.error === "string"
      ? data.error : `${response.status} ${response.statusText}`;
    throw new ApiError(message, response.status);
  }
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);

/** The file's bytes as a data: URL, the form /<net>/classify takes. */
export function dataUrlOf(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new ApiError("the file could not be read", 0));
    reader.readAsDataURL(blob);
  });
}
