// Ids of the Step-Audio 2 tokens that the engine itself relies on (spec §6.1). The tokenizer
// files are the source of truth; tests check that these agree with them.
#pragma once
#include <cstdint>

namespace stepaudio::text::tok {

inline constexpr int32_t kEndOfText = 151643;      // <|endoftext|>, the pad token
inline constexpr int32_t kImStart = 151644;        // <|im_start|> (Qwen; unused by Step-Audio)
inline constexpr int32_t kImEnd = 151645;          // <|im_end|>
inline constexpr int32_t kToolCallStart = 151657;  // <tool_call>
inline constexpr int32_t kToolCallEnd = 151658;    // </tool_call>
inline constexpr int32_t kEot = 151665;            // <|EOT|>, end of turn and the stop token
inline constexpr int32_t kBot = 151666;            // <|BOT|>, begin of turn
inline constexpr int32_t kAudioStart = 151688;     // <audio_start>: the adaptor rows follow it
inline constexpr int32_t kAudioEnd = 151689;       // <audio_end>
inline constexpr int32_t kAudioPatch = 151690;     // <audio_patch>: one placeholder row
inline constexpr int32_t kAudioPatchPad = 151691;
inline constexpr int32_t kTtsStart = 151693;      // <tts_start>: speech output follows
inline constexpr int32_t kTtsEnd = 151694;        // <tts_end>
inline constexpr int32_t kTtsPad = 151695;        // <tts_pad>: empty text slot in TA4 layout
inline constexpr int32_t kAudio0 = 151696;        // <audio_0>; audio code k is id kAudio0 + k
inline constexpr int32_t kNumAudioTokens = 6656;  // <audio_0> ... <audio_6655>
inline constexpr int32_t kNumAudioCodes = 6561;   // real CosyVoice2 codes are 0 ... 6560
inline constexpr int32_t kAudioPadCode = 6561;    // <audio_6561>, the audio pad

}  // namespace stepaudio::text::tok
