import { repriceScenario } from './scenarios.js';

repriceScenario(23);
