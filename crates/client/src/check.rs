//! The pre-call check: the chosen camera and microphone open for a preview and a level meter,
//! and a test sound plays through the chosen speaker. Dropping it releases every device (the
//! camera light goes off) and closes its audio.

use web_sys::{AnalyserNode, AudioContext, MediaStream, MediaStreamAudioSourceNode};

use crate::rtc::{LocalMedia, MediaError};

pub struct DeviceCheck {
    /// Dropped with the check: its tracks stop.
    media: LocalMedia,
    audio: AudioContext,
    analyser: AnalyserNode,
    _source: MediaStreamAudioSourceNode,
    samples: Vec<u8>,
}

impl DeviceCheck {
    /// Opens the chosen devices. `audio` is made by the click that asked for the check, so the
    /// browser lets it run (it would stay suspended if made once the devices had opened).
    pub async fn open(audio: AudioContext) -> Result<Self, MediaError> {
        let media = LocalMedia::open(true, &crate::devices::choice()).await?;
        let broken = |_| MediaError::Failed("audio analysis".into());
        let analyser = audio.create_analyser().map_err(broken)?;
        // A window longer than the meter's tick (8192 samples are 170 ms at 48 kHz), so that a
        // short sound between two readings is never missed.
        analyser.set_fft_size(WINDOW as u32);
        let source = audio
            .create_media_stream_source(media.stream())
            .map_err(broken)?;
        source.connect_with_audio_node(&analyser).map_err(broken)?;
        let samples = vec![128; analyser.fft_size() as usize];
        Ok(Self {
            media,
            audio,
            analyser,
            _source: source,
            samples,
        })
    }

    /// A second handle on the preview's stream, never a copy of its tracks.
    pub fn stream(&self) -> MediaStream {
        self.media.share_stream()
    }

    /// How loud the microphone was at its loudest moment in the last window, from 0 to 1.
    pub fn level(&mut self) -> f64 {
        self.analyser.get_byte_time_domain_data(&mut self.samples);
        level(&self.samples)
    }

    /// Plays the test sound through the speaker `speaker` (the system's if `None`).
    pub fn test_sound(&self, speaker: Option<&str>) {
        if let Some(id) = speaker {
            crate::devices::play_through(&self.audio, id);
        }
        // Resumed by this click, in case the context was held back.
        let _ = self.audio.resume();
        crate::ringer::test_sound(&self.audio);
    }
}

impl Drop for DeviceCheck {
    fn drop(&mut self) {
        let _ = self.audio.close();
    }
}

/// Samples the analyser keeps: more than a tick of the meter holds.
const WINDOW: usize = 8192;

/// Samples in one moment of the meter (about 10 ms): short enough that a click or a syllable
/// fills one whole, so its loudness is not averaged away with the silence around it.
const MOMENT: usize = 512;

/// The level a meter shows for unsigned 8-bit samples (128 is silence): the RMS of the loudest
/// moment, scaled so that speech, whose RMS seldom passes a quarter of full scale, fills most of
/// the meter.
pub fn level(samples: &[u8]) -> f64 {
    let rms = |moment: &[u8]| {
        let sum: f64 = moment
            .iter()
            .map(|&s| {
                let x = (f64::from(s) - 128.0) / 128.0;
                x * x
            })
            .sum();
        (sum / moment.len() as f64).sqrt()
    };
    let loudest = samples.chunks(MOMENT).map(rms).fold(0.0, f64::max);
    (loudest * 4.0).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::level;

    #[test]
    fn silence_is_zero_and_loud_fills_the_meter() {
        assert_eq!(level(&[]), 0.0);
        assert_eq!(level(&[128; 64]), 0.0);
        assert_eq!(level(&[0, 255].repeat(32)), 1.0);
        // A quiet tone (an eighth of full scale) shows as half.
        let quiet = level(&[112, 144].repeat(32));
        assert!((quiet - 0.5).abs() < 0.01, "{quiet}");
    }

    #[test]
    fn a_short_sound_in_a_long_silence_shows_at_its_own_loudness() {
        // 20 ms of a quiet tone (at 48 kHz) somewhere in 170 ms of silence.
        let mut window = vec![128; super::WINDOW];
        window[3000..3960].copy_from_slice(&[112, 144].repeat(480));
        let shown = level(&window);
        assert!((shown - 0.5).abs() < 0.01, "{shown}");
    }
}
