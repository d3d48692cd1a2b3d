#include <gtest/gtest.h>

#include "text/output_split.h"
#include "text/special_tokens.h"

using namespace stepaudio;
using Ids = std::vector<int32_t>;

TEST(OutputSplit, SeparatesTextAndAudioLikeTheOfficialCode) {
  // <tts_start> is in the prompt; the output interleaves text and audio, then <tts_end>, more text
  // and <|EOT|>.
  const Ids gen = {9707,       151696 + 5, 151696 + 6560, 151696 + 6561, 151696 + 6655, 11, 151695,
                   151696 + 0, 151694,     151688,        151693,        151690,        13, 151665};
  const auto s = text::split_output(gen);
  EXPECT_EQ(s.text_ids, (Ids{9707, 11, 13}));   // 151688…151695 dropped, trailing EOT dropped
  EXPECT_EQ(s.audio_codes, (Ids{5, 6560, 0}));  // 6561 (pad) and 6655 (unused) dropped
}

TEST(OutputSplit, EdgeCases) {
  EXPECT_TRUE(text::split_output(Ids{}).text_ids.empty());
  EXPECT_TRUE(text::split_output(Ids{text::tok::kEot}).text_ids.empty());
  // Only a final EOT is the stop token; an output cut by the length limit keeps its last id.
  EXPECT_EQ(text::split_output(Ids{1, 2, 3}).text_ids, (Ids{1, 2, 3}));
  EXPECT_EQ(text::split_output(Ids{151665, 7}).text_ids, (Ids{151665, 7}));
  EXPECT_EQ(text::split_output(Ids{151687, 151688, 151695, 151696}).text_ids, (Ids{151687}));
  EXPECT_EQ(text::split_output(Ids{151687, 151688, 151695, 151696}).audio_codes, (Ids{0}));
  // Ids past the audio tokens (unused embedding rows) are codes >= 6561 and dropped.
  EXPECT_TRUE(text::split_output(Ids{158700}).audio_codes.empty());
}
