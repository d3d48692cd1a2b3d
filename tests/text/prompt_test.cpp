// The prompt builder against the golden prompts of tiny-a/manifest.json (made by the official
// apply_chat_template + HF tokenizer) and the worked examples of spec §6.2.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../test_paths.h"
#include "core/error.h"
#include "text/prompt.h"
#include "text/special_tokens.h"
#include "tokenizer_dirs.h"

using namespace stepaudio;
using nlohmann::json;
using text::ContentItem;
using text::Conversation;
using Ids = std::vector<int32_t>;

namespace {

const text::Tokenizer& tok() { return testing_text::vocab_merges_tokenizer(); }

const json& manifest() {
  static const json m = [] {
    const auto p = testing_paths::golden() / "tiny-a" / "manifest.json";
    std::ifstream f(p);
    if (!f) throw std::runtime_error("test data missing: " + p.string());
    return json::parse(f);
  }();
  return m;
}

// The manifest's messages as a Conversation; an audio item takes its per-chunk patch counts
// from the case's "chunks".
Conversation from_manifest(const json& c) {
  std::vector<int> patches;
  for (const auto& ch : c.value("chunks", json::array())) patches.push_back(ch.at("n_audio_patch"));
  Conversation conv;
  for (const auto& m : c.at("messages")) {
    text::Message msg;
    msg.role = m.at("role");
    msg.eot = m.value("eot", true);
    const json& content = m.at("content");
    if (content.is_string()) {
      msg.content = content.get<std::string>();
    } else if (content.is_array()) {
      std::vector<ContentItem> items;
      for (const auto& it : content) {
        const std::string type = it.at("type");
        if (type == "text")
          items.push_back(ContentItem::Text(it.at("text")));
        else if (type == "audio")
          items.push_back(ContentItem::Audio(patches));
        else if (type == "token")
          items.push_back(ContentItem::Tokens(it.at("token")));
        else
          throw std::runtime_error("unknown item type " + type);
      }
      msg.content = std::move(items);
    }
    conv.add(std::move(msg));
  }
  return conv;
}

}  // namespace

TEST(Prompt, ManifestCasesReproduceInputIds) {
  int checked_ids = 0, checked_pieces = 0;
  for (const auto& [name, c] : manifest().at("cases").items()) {
    SCOPED_TRACE(name);
    const Conversation conv = from_manifest(c);
    const auto pieces = conv.pieces();
    const json& want = c.at("prompt_pieces");
    ASSERT_EQ(pieces.size(), want.size());
    for (size_t i = 0; i < pieces.size(); ++i) {
      ASSERT_FALSE(pieces[i].is_ids);
      EXPECT_EQ(pieces[i].text, want[i].at("text").get<std::string>()) << "piece " << i;
      EXPECT_EQ(tok().encode(pieces[i].text).size(), want[i].at("num_ids").get<size_t>());
    }
    ++checked_pieces;
    if (!c.contains("input_ids")) continue;
    const auto p = conv.encode(tok());
    EXPECT_EQ(p.ids, c.at("input_ids").get<Ids>());
    EXPECT_EQ(p.ids.size(), c.at("input_ids_len").get<size_t>());
    if (c.contains("audio_start_positions")) {
      EXPECT_EQ(p.audio_start_positions, c.at("audio_start_positions").get<std::vector<size_t>>());
    }
    ++checked_ids;
  }
  EXPECT_EQ(checked_pieces, 6);
  EXPECT_EQ(checked_ids, 4);  // en_hello_3s, real_speech, en_long_31s, text_2plus2
}

TEST(Prompt, AsrPresetMatchesManifest) {
  for (const char* name : {"en_hello_3s", "real_speech", "en_long_31s"}) {
    const json& c = manifest().at("cases").at(name);
    std::vector<int> patches;
    for (const auto& ch : c.at("chunks")) patches.push_back(ch.at("n_audio_patch"));
    const auto p = text::presets::asr(patches).encode(tok());
    EXPECT_EQ(p.ids, c.at("input_ids").get<Ids>()) << name;
    EXPECT_EQ(p.audio_patches, patches);
  }
  const json& t = manifest().at("cases").at("text_2plus2");
  EXPECT_EQ(text::presets::chat_text("What is 2+2?").encode(tok()).ids,
            t.at("input_ids").get<Ids>());
}

TEST(Prompt, SpecWorkedAsrExample) {
  // 1 s of audio: n = 13, 36 ids in all (spec §6.2).
  const auto p = text::presets::asr({13}).encode(tok());
  Ids want = {151666, 8948,   198,   14880, 65577,  16872,  56568, 31838, 104188,
              9370,   105761, 43815, 1773,  151665, 151666, 25312, 198,   151688};
  want.insert(want.end(), 13, 151690);
  for (int32_t id : {151689, 151665, 151666, 77091, 198}) want.push_back(id);
  EXPECT_EQ(p.ids, want);
  EXPECT_EQ(p.ids.size(), 36u);
  EXPECT_EQ(p.audio_start_positions, (std::vector<size_t>{17}));
}

TEST(Prompt, SpecPieces) {
  EXPECT_EQ(tok().encode("<|BOT|>system\nYou are a helpful assistant.<|EOT|>"),
            (Ids{151666, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151665}));
  EXPECT_EQ(tok().encode("<|BOT|>assistant\n<tts_start>"), (Ids{151666, 77091, 198, 151693}));
  EXPECT_EQ(tok().encode("\n<think>\n"), (Ids{198, 13708, 766, 397}));
  EXPECT_EQ(tok().encode("</think>"), (Ids{522, 26865, 29}));
  // The speech and thinking endings produce exactly those ids.
  Conversation c;
  c.generate_speech();
  EXPECT_EQ(c.encode(tok()).ids, (Ids{151666, 77091, 198, 151693}));
  Conversation t;
  t.generate_thinking();
  // One string piece, so "\n" + "\n<think>" merge into "\n\n" (271) as in the official code.
  EXPECT_EQ(t.encode(tok()).ids, (Ids{151666, 77091, 271, 13708, 766, 397}));
}

TEST(Prompt, PiecesNeverMergeAcrossBoundaries) {
  // "a" + "b" as two text items stays two words; as one string it is one.
  Conversation split, joined;
  split.say("human", std::vector<ContentItem>{ContentItem::Text("hel"), ContentItem::Text("lo")});
  joined.say("human", std::vector<ContentItem>{ContentItem::Text("hello")});
  const auto a = split.encode(tok()).ids, b = joined.encode(tok()).ids;
  EXPECT_NE(a, b);
  Ids want = tok().encode("<|BOT|>human\n");
  for (const char* s : {"hel", "lo", "<|EOT|>"}) {
    const Ids x = tok().encode(s);
    want.insert(want.end(), x.begin(), x.end());
  }
  EXPECT_EQ(a, want);
}

TEST(Prompt, S2stMultiTurnAndTools) {
  // Speech-to-speech translation: the assistant turn is opened with <tts_start>, no EOT.
  const auto s2st = text::presets::s2st({5, 3}).encode(tok());
  const Ids tail = {151665, 151666, 77091, 198, 151693};
  ASSERT_GE(s2st.ids.size(), tail.size());
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), s2st.ids.end() - tail.size()));
  EXPECT_EQ(s2st.audio_start_positions.size(), 2u);
  // The two chunk blocks follow each other directly.
  EXPECT_EQ(s2st.audio_start_positions[1], s2st.audio_start_positions[0] + 5 + 2);

  // Multi-turn speech: the past answer goes back as <tts_start> + raw ids + <|EOT|>.
  const Ids generated = {9707, 151696, 151697, 158257, 151694, 13};
  Conversation conv;
  conv.system(text::presets::kChat)
      .user(std::vector<ContentItem>{ContentItem::Audio({4})})
      .assistant_speech_turn(generated)
      .user("Now write a 4-line poem about it.")
      .generate_text();
  const auto p = conv.encode(tok());
  Ids turn = {151666, 77091, 198, 151693};
  turn.insert(turn.end(), generated.begin(), generated.end());
  turn.push_back(151665);
  EXPECT_NE(std::search(p.ids.begin(), p.ids.end(), turn.begin(), turn.end()), p.ids.end());

  // Tool schemas go in as a string message of their own role.
  const std::string schema = R"([{"type": "function", "function": {"name": "search"}}])";
  const auto tc = text::presets::tool_call("sys", schema, {2}).encode(tok());
  const Ids schema_piece = tok().encode("<|BOT|>tool_json_schemas\n" + schema + "<|EOT|>");
  EXPECT_NE(std::search(tc.ids.begin(), tc.ids.end(), schema_piece.begin(), schema_piece.end()),
            tc.ids.end());
  Conversation after;
  after.tool_result("result", text::presets::kToolResultInstruction);
  Ids want = tok().encode("<|BOT|>input\n");
  for (const std::string& s :
       {std::string("result"), std::string(text::presets::kToolResultInstruction),
        std::string("<|EOT|>")}) {
    const Ids x = tok().encode(s);
    want.insert(want.end(), x.begin(), x.end());
  }
  EXPECT_EQ(after.encode(tok()).ids, want);

  // Speech chat with a text question ends like s2st; the audio question form too.
  const auto tts = text::presets::chat_text("Hi", /*speech_out=*/true).encode(tok());
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), tts.ids.end() - tail.size()));
  const auto aq = text::presets::chat_audio({3}, /*speech_out=*/false).encode(tok());
  const Ids text_tail = {151665, 151666, 77091, 198};
  EXPECT_TRUE(std::equal(text_tail.begin(), text_tail.end(), aq.ids.end() - text_tail.size()));
}

TEST(Prompt, UserBecomesHumanAndTextTurnsStayText) {
  Conversation c;
  c.add(text::Message{"user", std::string("hi"), true});
  c.assistant("hello").generate_text();
  EXPECT_EQ(c.messages()[0].role, "human");
  EXPECT_EQ(
      c.encode(tok()).ids,
      tok().encode("<|BOT|>human\nhi<|EOT|><|BOT|>assistant\nhello<|EOT|><|BOT|>assistant\n"));
}

TEST(Prompt, RejectsInconsistentAudio) {
  Conversation c;
  c.user(std::vector<ContentItem>{ContentItem::Audio({-1})});
  EXPECT_THROW(c.encode(tok()), Error);
  Conversation d;
  d.user(std::vector<ContentItem>{ContentItem::Tokens({text::tok::kAudioStart, 1})});
  EXPECT_THROW(d.encode(tok()), Error);
  Conversation e;
  e.user("I typed <audio_start> myself");
  EXPECT_THROW(e.encode(tok()), Error);
  Conversation f;
  f.user(std::vector<ContentItem>{ContentItem::Tokens({-3})});
  EXPECT_THROW(f.pieces(), Error);
}
