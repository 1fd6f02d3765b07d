// music-api: the check of a signed playback URL, run by nginx (njs) before it serves a byte.
// The workers sign PATH "\n" EXP "\n" KID with HMAC-SHA-256 under key KID of the shared key
// file (core/media_keys.hpp); this accepts any key the file lists, so after a rotation URLs
// signed with the previous key keep working until they expire.
import crypto from 'crypto';

// Exactly what the workers sign: /v1/media/TRACK_ID/FILE_NAME, with nothing encoded, no dot
// segments, no empty segments (so no path that could leave the media root ever verifies).
const MEDIA_PATH = /^\/v1\/media\/mtrack_[A-Za-z0-9_-]{1,64}\/[a-z0-9][a-z0-9_-]{0,40}\.[a-z0-9]{1,5}$/;
// Exactly the query the workers write, in their order: anything else (a repeated, missing or
// extra argument, another order, an encoded character) is refused. One regex over nginx's raw
// query string: parsing r.args costs more per request than the HMAC itself.
const QUERY = /^exp=([0-9]{1,12})&kid=([A-Za-z0-9_-]{1,32})&sig=([A-Za-z0-9_-]{43})$/;

function sameText(a, b) {
    // Constant time in the position of the first difference.
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
    return diff === 0;
}

// "ok", "expired" (signed by a known key, but too late), or "denied" (anything else). On "ok" it
// also sets $music_api_media_max_age, the seconds the URL has left (one njs call per request).
function verdict(r) {
    const raw = r.variables.request_uri;
    const query = raw.indexOf('?');
    const path = query < 0 ? raw : raw.substring(0, query);
    if (!MEDIA_PATH.test(path) || path !== r.uri) return 'denied';
    const parts = QUERY.exec(query < 0 ? '' : raw.substring(query + 1));
    if (parts === null) return 'denied';
    const exp = parts[1], kid = parts[2], sig = parts[3];
    const keys = music_api_media_keys.keys;
    if (!Object.prototype.hasOwnProperty.call(keys, kid)) return 'denied';
    const expected = crypto.createHmac('sha256', keys[kid]).update(path + '\n' + exp + '\n' + kid).digest('base64url');
    if (!sameText(expected, sig)) return 'denied';
    const left = Number(exp) - Math.floor(Date.now() / 1000);
    if (left <= 0) return 'expired';
    r.variables.music_api_media_max_age = String(left);
    return 'ok';
}

export default { verdict };
