// Text into HTML, safely: every page lmforge writes (reports, the dashboard, explanations)
// puts data into its markup only through these two.

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Text made safe for HTML content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/**
 * JSON for an inline <script type="application/json">: `<`, `>` and `&` as \u escapes (so no
 * `</script>` or `<!--` can end or change the script), and U+2028/U+2029 escaped too.
 * JSON.parse of the element's text gives the value back unchanged.
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
