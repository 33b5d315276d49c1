/* Junction media frames: the conventions for media on the packet bus (version 1).
 *
 * Part of the ABI's documented conventions, versioned on its own (JN_MEDIA_FRAME_VERSION). The
 * carrier is the ABI's own jn_buf + jn_media_meta (abi.h): one bus buffer is one frame.
 *
 * A frame on the bus
 *   - One access unit (video) or one codec frame/packet (audio) per jn_buf, flag JN_BUF_MEDIA
 *     set and buf->meta filled in. The payload is never touched by the metadata.
 *   - Video (H.264, H.265): Annex-B byte stream, every NAL unit preceded by 00 00 00 01. A
 *     keyframe (IDR for H.264, IRAP for H.265) carries JN_MF_KEY and is preceded *in the same
 *     frame* by the stream's parameter sets (VPS/SPS/PPS) with JN_MF_CONFIG set, so a subscriber
 *     that joins late can decode from the first keyframe it sees. Producers repeat parameter sets
 *     they learned out of band (sprop-parameter-sets, an earlier frame) before every keyframe.
 *   - Audio: raw codec frames. PCMA/PCMU: A-law/mu-law bytes, one byte per sample. Opus: one
 *     Opus packet (RFC 6716). AAC: one raw AAC access unit (no ADTS header); the
 *     AudioSpecificConfig travels in a frame with JN_MF_CONFIG and len = config size (sent once
 *     at start and again before the first frame a late subscriber receives, like video).
 *   - meta.pts/dts in meta.clock_rate units (90000 for video; the sample rate for audio; 48000
 *     for Opus). meta.seq counts frames per stream, +1 each: a gap means a frame was lost
 *     (the consumer should wait for the next JN_MF_KEY before decoding video again).
 *   - JN_MF_DISCONT: timestamps jump or the source changed (a device restarted, loss resynced).
 *   - JN_MF_CORRUPT: never set on a frame that goes on the bus by sdk/media's producers (a damaged
 *     access unit is dropped and the *next* frame carries JN_MF_DISCONT); it exists for tools.
 *   - meta.track: 0 video, 1 audio for single-program sources.
 *
 * Stream names
 *   A producer publishing a source named S (for example "gb28181/34020000001320000001/
 *   34020000001310000001", a camera channel) publishes its tracks on "S/video" and "S/audio".
 *   Names are [A-Za-z0-9._/-]; the first path element is the producing plugin's name.
 *
 * Late join and keyframe requests
 *   A consumer that subscribes mid-stream drops frames until the first JN_MF_KEY (video) or the
 *   next frame (audio). To ask for a keyframe, it publishes the core event
 *       topic "media.keyframe_request", json {"stream": "S/video", "reason": "join" | "loss"}
 *   Producers subscribe to the topic prefix "media.keyframe_request" and turn it into their
 *   protocol's request (GB/T 28181 IFrame command, RTCP PLI/FIR, SIP INFO picture_fast_update).
 *   Producers rate-limit requests per stream (sdk/media's KeyframeLimiter, junction/media/keyframe.hpp:
 *   at most one per 500 ms).
 */
#ifndef JUNCTION_MEDIA_FRAME_H
#define JUNCTION_MEDIA_FRAME_H

#include "abi.h"

#define JN_MEDIA_FRAME_VERSION 1
#define JN_MEDIA_KEYFRAME_REQUEST_TOPIC "media.keyframe_request"
#define JN_MEDIA_VIDEO_SUFFIX "/video"
#define JN_MEDIA_AUDIO_SUFFIX "/audio"

#endif /* JUNCTION_MEDIA_FRAME_H */
